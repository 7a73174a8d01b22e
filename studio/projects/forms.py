from django import forms

from studio.projects.models import Role


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=120, widget=forms.TextInput(attrs={"autofocus": True, "placeholder": "Spring campaign"}))
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What the team is making (optional)"})
    )


class AddMemberForm(forms.Form):
    identifier = forms.CharField(
        label="Username or e-mail", max_length=254, widget=forms.TextInput(attrs={"placeholder": "maria or maria@studio.example"})
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDITOR)


class ChangeRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
