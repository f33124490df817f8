"""The asyncio edge: SIP transports, RTP sockets, the media clock, calls, legs and rooms."""
