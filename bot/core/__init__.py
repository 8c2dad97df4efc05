"""The conversation core: what comes in and goes out, steps, payloads, routing, dispatch, and
understanding what villagers type. It knows no messenger."""
