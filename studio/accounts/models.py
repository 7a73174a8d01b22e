from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The studio's user: Django's own, kept swappable from the start so it can grow."""

    def __str__(self):
        return self.get_full_name() or self.username
