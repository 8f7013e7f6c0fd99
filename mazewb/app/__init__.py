"""The Dash web app: layout, callbacks and figures; no science in here."""
