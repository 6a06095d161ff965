"""responder: answers each recorded user turn from recent history plus recalled memory."""
