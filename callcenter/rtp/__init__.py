"""RTP/RTCP packets, RFC 4733 telephone-events, jitter buffer and stream statistics (no I/O)."""
