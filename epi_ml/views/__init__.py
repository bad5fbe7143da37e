"""Read models of the dashboard: what each page shows, computed from the store and the lake.

No Dash here (the domain core stays UI-free): each function takes an Engine and/or Settings and
returns plain data (polars frames, dataclasses, dicts), so pages stay thin and tests need no browser.
"""
