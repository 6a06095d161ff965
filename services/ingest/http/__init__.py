"""The HTTP edge: one router per resource, over the ports the composition root provides."""
