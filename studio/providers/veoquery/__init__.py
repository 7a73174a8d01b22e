from studio.providers.veoquery.adapter import VeoQueryAdapter

adapter = VeoQueryAdapter()
