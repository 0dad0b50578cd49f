"""AI-generated UI: quick actions, UI specs rendered as real controls, sandboxed HTML artifacts.

Imports engines through the contract only; never FastAPI or Gradio.
"""
