"""Kafka plumbing: aiokafka clients for tools and tests, the embedded broker, TLS/SASL options."""
