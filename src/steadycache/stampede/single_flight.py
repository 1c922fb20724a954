"""Single-flight tables (``stampede/_async/flights.py``, and the generated sync twin)."""

from __future__ import annotations

from steadycache.stampede._async.flights import AsyncFlight, AsyncFlightTable
from steadycache.stampede._sync.flights import Flight, FlightTable

__all__ = ["AsyncFlight", "AsyncFlightTable", "Flight", "FlightTable"]
