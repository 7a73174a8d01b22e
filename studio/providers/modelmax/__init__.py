from studio.providers.modelmax.adapter import ModelMaxAdapter

adapter = ModelMaxAdapter()
