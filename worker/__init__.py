"""Producers: turn tickets into minibatches and send them to the trainer."""
