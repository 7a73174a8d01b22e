"""What a reviewer sends: gallery filters, stars and picks, comments with a time code."""

import re

from django import forms
from django.core.exceptions import ValidationError

from studio.jobs.models import ReviewState

SORTS = [("newest", "Newest first"), ("oldest", "Oldest first"), ("rating", "Best rated first")]
RATINGS = [("", "Any rating"), ("5", "★★★★★ only"), ("4", "★★★★ and up"), ("3", "★★★ and up"), ("2", "★★ and up"),
           ("1", "★ and up"), ("none", "Not rated yet")]
PICKS = [("", "Picked or not"), ("mine", "Picked by me"), ("any", "Picked by anyone"), ("none", "Not picked")]


class GalleryFilters(forms.Form):
    """The gallery's query string. Unknown or malformed values are dropped, never an error page."""

    q = forms.CharField(required=False, max_length=200, label="Prompt contains")
    model = forms.ChoiceField(required=False, label="Model")
    provider = forms.ChoiceField(required=False, label="Provider")
    batch = forms.ChoiceField(required=False, label="Batch")
    state = forms.ChoiceField(required=False, label="Review state",
                              choices=[("", "Any state"), *ReviewState.choices])
    rating = forms.ChoiceField(required=False, label="Rating", choices=RATINGS)
    picked = forms.ChoiceField(required=False, label="Picks", choices=PICKS)
    sort = forms.ChoiceField(required=False, label="Sort", choices=SORTS)

    def __init__(self, data, *, options):
        super().__init__(data)
        self.fields["model"].choices = [("", "All models"), *options["models"]]
        self.fields["provider"].choices = [("", "All providers"), *options["providers"]]
        self.fields["batch"].choices = [("", "All batches"), *options["batches"]]

    def values(self):
        """The valid filters (an invalid one is as if it was not given)."""
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if value}

    @property
    def active_count(self):
        return sum(1 for name, value in self.values().items() if name not in ("sort",))


class RatingForm(forms.Form):
    stars = forms.TypedChoiceField(required=False, coerce=int, empty_value=None,
                                   choices=[("0", "No stars"), *((str(n), f"{n} stars") for n in range(1, 6))])
    picked = forms.TypedChoiceField(required=False, coerce=lambda v: v == "1", empty_value=None,
                                    choices=[("0", "Not picked"), ("1", "Picked")])


TIMECODE = re.compile(r"^(?:([0-9]+):)?([0-9]+(?:[.,][0-9]+)?)$")  # ASCII digits (\d takes "٣" too)


def parse_timecode(text):
    """Seconds from "3", "3.5", "0:03.50" or "1:02"; None for an empty text; ValueError otherwise."""
    text = (text or "").strip()
    if not text:
        return None
    match = TIMECODE.match(text)
    if not match:
        raise ValueError(text)
    minutes, seconds = match.groups()
    seconds = float(seconds.replace(",", "."))
    if minutes and seconds >= 60:
        raise ValueError(text)
    return int(minutes or 0) * 60 + seconds


class CommentForm(forms.Form):
    body = forms.CharField(label="Comment", widget=forms.Textarea(attrs={"rows": 3}), strip=True,
                           error_messages={"required": "Write something first."})
    timecode = forms.CharField(required=False, label="At")

    def clean_timecode(self):
        try:
            return parse_timecode(self.cleaned_data["timecode"])
        except ValueError:
            raise ValidationError(
                "Write a time code as seconds (3.5) or minutes and seconds (0:03.50), or leave it empty for a note."
            ) from None
