from studio.providers.qingbo.adapter import QingboAdapter

adapter = QingboAdapter()
