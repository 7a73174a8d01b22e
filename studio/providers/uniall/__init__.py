from studio.providers.uniall.adapter import UniAllAdapter

adapter = UniAllAdapter()
