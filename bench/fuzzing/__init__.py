"""The areas of bench/edge_fuzz.py, one module each: what every area shares (common), Schemathesis
over the OpenAPI document (schema), signed webhooks of wrong shapes (webhooks), the hand-written
cases (hand_cases), floods and huge bodies (abuse), and what reached a dead-letter topic
(dead_letters)."""
