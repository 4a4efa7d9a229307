"""Neuron firings: record what each recurrent cell does over a text, find the cells that track
simple properties of the text (inside quotes, position in line, ...), and draw them."""
