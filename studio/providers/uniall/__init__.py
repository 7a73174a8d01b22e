"""UniAll (New-API gateway, Vidu Q3 models)."""

from studio.providers.uniall.adapter import UniAllAdapter

adapter = UniAllAdapter()
