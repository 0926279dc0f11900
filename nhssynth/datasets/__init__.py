"""Real example data shipped inside the package.

``load_example()`` returns SUPPORT2 (Study to Understand Prognoses, Preferences, Outcomes and
Risks of Treatment): 9,105 seriously ill hospitalised adults, 48 clinical and administrative
variables, about 11% of values missing.  Source: Vanderbilt Biostatistics / UCI Machine Learning
Repository (id 880), licensed CC BY 4.0; see ``data/LICENSE-support2.txt``.
"""
from ._support import EXAMPLE_CITATION, load_example

__all__ = ["load_example", "EXAMPLE_CITATION"]
