"""Case workup (H&E count + IHC panel + grade in one report) and the pathologist's review of the count."""
