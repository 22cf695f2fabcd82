"""Kafka plumbing: aiokafka clients, the embedded broker, TLS/SASL options, Faust's transport."""
