"""``encajes serve``: the HTTP API and search page over a workdir's runs, with encoders kept warm."""
