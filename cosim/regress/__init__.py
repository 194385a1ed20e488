"""Seeded random differential regression of the RTL against the architectural model.

``iogate regress --seed N --translations M --sim S`` builds the RTL, generates a random
world from the seed (:mod:`.world`), streams random translation requests into the RTL
(:mod:`.cocotb_regress`) and checks every answer against the model. The seed is all it takes
to replay a run.
"""
