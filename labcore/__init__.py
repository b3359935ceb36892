"""The lab's logic. Importing it quiets TensorFlow's start-up chatter (labcore.quiet) in every
program that uses it, and in the processes they spawn."""
from labcore import quiet

quiet.install()
