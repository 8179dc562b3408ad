"""The behaviour sequence model: events as tokens, a small transformer, churn and purchase heads."""
