"""The turn engine: input turns, the conversation, and the responses that answer them."""
