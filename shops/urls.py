from django.urls import path

from shops import views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("switch-shop/", views.switch_shop, name="switch_shop"),
]
