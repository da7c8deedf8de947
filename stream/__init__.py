"""nirstream.stream: the real-time pipeline and the command line."""
