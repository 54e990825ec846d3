"""Channels that deliver a rendered alert: SMS (Twilio), console, MQTT."""
