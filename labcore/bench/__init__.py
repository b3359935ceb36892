"""`python -m labcore.bench`: the speed and memory measures, side by side in one run. Imports every
package below it."""
