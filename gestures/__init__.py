"""Hand gestures from MediaPipe landmarks: classification, temporal logic and actions.

Imports neither engines nor modes: what a gesture does to a chat is decided by the playground.
"""
