"""The lanes: one folder per output stream, each with its agent, its pure logic and its state."""
