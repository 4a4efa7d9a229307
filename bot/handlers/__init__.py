"""The bot's handlers, one module per idea; bot/app.py wires them."""
