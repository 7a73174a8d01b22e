from django.contrib import admin

from studio.review.models import Comment, Comparison, Rating

admin.site.register(Rating)
admin.site.register(Comment)
admin.site.register(Comparison)
