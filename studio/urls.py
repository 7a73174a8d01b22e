from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from studio.core import views as core_views
from studio.jobs.webhooks import job_webhook
from studio.jobs import views as job_views
from studio.jobs import compose_views
from studio.projects import views as project_views

urlpatterns = [
    path("", project_views.project_list, name="project_list"),
    path("projects/new/", project_views.project_create, name="project_create"),
    path("p/<slug:slug>/", project_views.project_detail, name="project_detail"),
    path("p/<slug:slug>/members/", project_views.project_members, name="project_members"),
    path("p/<slug:slug>/members/<int:membership_id>/", project_views.member_update, name="member_update"),
    path("media/projects/<int:project_id>/<path:path>", core_views.media_file, name="media_file"),
    path("public/images/<str:token>.<str:extension>", core_views.public_image, name="public_image"),
    path("hooks/jobs/<str:token>/", job_webhook, name="job_webhook"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("admin/", admin.site.urls),
    path("p/<slug:slug>/jobs/<int:job_id>/", job_views.job_detail, name="job_detail"),
    path("p/<slug:slug>/jobs/<int:job_id>/card/", job_views.job_card, name="job_card"),
    path("p/<slug:slug>/jobs/<int:job_id>/resolve/", job_views.job_resolve, name="job_resolve"),
]

urlpatterns += [
    path("p/<slug:slug>/compose/", compose_views.composer_submit, name="composer_submit"),
    path("p/<slug:slug>/compose/fields/", compose_views.composer_fields, name="composer_fields"),
    path("p/<slug:slug>/prompts/", compose_views.prompt_history, name="prompt_history"),
    path("p/<slug:slug>/jobs/<int:job_id>/run-again/", compose_views.job_run_again, name="job_run_again"),
]

handler403 = "studio.core.views.permission_denied"

admin.site.site_header = "Studio administration"
admin.site.site_title = "Studio admin"
admin.site.index_title = "Providers, people and projects"
