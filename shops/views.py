"""Public pages (welcome, sign-up) and the staff shop switcher."""

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from shops.forms import SignUpForm, SwitchShopForm
from shops.middleware import SESSION_KEY
from shops.models import Shop
from shops.selectors import memberships_for
from shops.services.tenants import sign_up_shop


def home(request):
    return render(request, "shops/home.html")


def signup(request):
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            shop, user = sign_up_shop(
                **form.cleaned_data, language=request.LANGUAGE_CODE
            )
        except ValidationError as error:
            for name, problems in error.message_dict.items():
                form.add_error(name if name in form.fields else None, problems)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            request.session[SESSION_KEY] = shop.pk
            messages.success(
                request,
                gettext(
                    "Welcome to Regulars! %(shop)s is ready, with its first store. "
                    "Next: add your stores, staff and an API key for your till."
                )
                % {"shop": shop.name},
            )
            return redirect("admin:index")
    return render(request, "shops/signup.html", {"form": form})


def _safe_next(request, target: str) -> str:
    """A same-site page to return to; an object page of the old shop becomes its
    list, since the object is not in the new shop."""
    fallback = reverse("admin:index")
    if not target or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return fallback
    try:
        match = resolve(target.split("?")[0])
    except Resolver404:
        return fallback
    name = match.url_name or ""
    for suffix in ("_change", "_delete", "_history"):
        if name.endswith(suffix) and match.namespace == "admin":
            return reverse(f"admin:{name.removesuffix(suffix)}_changelist")
    return target


@require_POST
def switch_shop(request):
    """Make another of the user's shops the active one (superuser: any, or all)."""
    if not request.user.is_authenticated:
        return redirect(f"{reverse('admin:login')}?next={reverse('admin:index')}")
    form = SwitchShopForm(request.POST)
    if not form.is_valid():
        raise Http404
    wanted = form.cleaned_data["shop"]
    user = request.user
    if wanted == "all" and user.is_superuser:
        request.session.pop(SESSION_KEY, None)
        shop_name = gettext("all shops")
    else:
        try:
            shop_id = int(wanted)
        except ValueError:
            raise Http404 from None
        if user.is_superuser:
            shop = Shop.objects.filter(pk=shop_id).first()
        else:
            membership = memberships_for(user=user).filter(shop_id=shop_id).first()
            shop = membership.shop if membership else None
        if shop is None:
            # Not a member: the same answer as a shop that does not exist.
            raise Http404
        request.session[SESSION_KEY] = shop.pk
        shop_name = shop.name
    messages.info(
        request, gettext("You are now working in %(shop)s.") % {"shop": shop_name}
    )
    return HttpResponseRedirect(_safe_next(request, form.cleaned_data["next"]))
