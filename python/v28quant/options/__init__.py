"""Options: Black-Scholes-Merton, implied volatility, the volatility surface."""
