"""sender: sends the replies of WhatsApp conversations through the Cloud API, each part at most once."""
