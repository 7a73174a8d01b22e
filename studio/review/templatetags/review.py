from django import template

register = template.Library()


@register.filter
def timecode(seconds):
    """3.5 → "0:03.50": minutes, seconds and hundredths, as players show a position."""
    if seconds is None or seconds == "":
        return ""
    hundredths = round(float(seconds) * 100)
    minutes, rest = divmod(hundredths, 6000)
    return f"{minutes}:{rest // 100:02d}.{rest % 100:02d}"


@register.filter
def star_count(value):
    """An average of stars rounded to the nearest whole star, for drawing (the number is shown beside it)."""
    return round(value) if value else 0


@register.simple_tag
def star_range():
    return range(1, 6)
