"""Call-center telephony service: SIP/RTP engine, IVR, ACD, recording and conferences."""

__version__ = "0.1.0"
