from studio.providers.apimp.adapter import ApimpAdapter

adapter = ApimpAdapter()
