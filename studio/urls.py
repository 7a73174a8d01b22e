from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path, register_converter

from studio.accounts.signin import SignInForm
from studio.core import views as core_views
from studio.core.params import IdConverter
from studio.jobs import compose_views
from studio.jobs import views as job_views
from studio.jobs.webhooks import job_webhook
from studio.projects import views as project_views
from studio.review import views as review_views

# Ids in paths: ASCII digits up to the largest bigint, so an id out of range is a 404, not an overflow.
register_converter(IdConverter, "id")

urlpatterns = [
    path("", project_views.project_list, name="project_list"),
    path("projects/new/", project_views.project_create, name="project_create"),
    path("p/<slug:slug>/", project_views.project_detail, name="project_detail"),
    path("p/<slug:slug>/members/", project_views.project_members, name="project_members"),
    path("p/<slug:slug>/members/<id:membership_id>/", project_views.member_update, name="member_update"),
    path("media/projects/<id:project_id>/<path:path>", core_views.media_file, name="media_file"),
    path("public/images/<str:token>.<str:extension>", core_views.public_image, name="public_image"),
    path("hooks/jobs/<str:token>/", job_webhook, name="job_webhook"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True, authentication_form=SignInForm),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("admin/", admin.site.urls),
    path("p/<slug:slug>/jobs/<id:job_id>/", job_views.job_detail, name="job_detail"),
    path("p/<slug:slug>/jobs/<id:job_id>/card/", job_views.job_card, name="job_card"),
    path("p/<slug:slug>/jobs/updates/", job_views.job_updates, name="job_updates"),
    path("p/<slug:slug>/jobs/<id:job_id>/resolve/", job_views.job_resolve, name="job_resolve"),
]

urlpatterns += [
    path("p/<slug:slug>/compose/", compose_views.composer_submit, name="composer_submit"),
    path("p/<slug:slug>/compose/fields/", compose_views.composer_fields, name="composer_fields"),
    path("p/<slug:slug>/prompts/", compose_views.prompt_history, name="prompt_history"),
    path("p/<slug:slug>/jobs/<id:job_id>/run-again/", compose_views.job_run_again, name="job_run_again"),
]

urlpatterns += [
    path("p/<slug:slug>/gallery/", review_views.gallery, name="gallery"),
    path("p/<slug:slug>/results/<id:result_id>/", review_views.result_detail, name="result_detail"),
    path("p/<slug:slug>/results/<id:result_id>/rating/", review_views.result_rate, name="result_rate"),
    path("p/<slug:slug>/results/<id:result_id>/review-state/", review_views.result_review_state,
         name="result_review_state"),
    path("p/<slug:slug>/results/<id:result_id>/comments/", review_views.result_comment, name="result_comment"),
    path("p/<slug:slug>/results/<id:result_id>/comments/<id:comment_id>/delete/", review_views.comment_delete,
         name="comment_delete"),
    path("p/<slug:slug>/comparisons/", review_views.comparison_list, name="comparison_list"),
    path("p/<slug:slug>/comparisons/new/", review_views.comparison_create, name="comparison_create"),
    path("p/<slug:slug>/comparisons/<id:comparison_id>/", review_views.comparison_detail, name="comparison_detail"),
    path("p/<slug:slug>/comparisons/<id:comparison_id>/winner/", review_views.comparison_winner,
         name="comparison_winner"),
    path("p/<slug:slug>/batches/<id:batch_id>/compare/", review_views.batch_compare, name="batch_compare"),
]

handler403 = "studio.core.views.permission_denied"

admin.site.site_header = "Studio administration"
admin.site.site_title = "Studio admin"
admin.site.index_title = "Providers, people and projects"
