"""Privacy: sealing each user's text with their own data key, so erasing the key leaves every
copy of an event unreadable (sealing), and the client downstream consumers use to open
events with keys fetched from the API (opener; also importable as convmem.opener). Imports
contracts, ports and errors only."""
