"""Dialogs of idm-studio."""
