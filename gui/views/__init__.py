"""Widgets that draw the session and send edit intents to :class:`gui.session_model.SessionModel`."""
