from django import template

from shops.models import Shop

register = template.Library()

# A superuser's list stays short; beyond it they use the Shops page.
SUPERUSER_CHOICES = 50


@register.inclusion_tag("shops/shop_switcher.html", takes_context=True)
def shop_switcher(context):
    """The active shop and role, and the other shops this user may switch to."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"show": False}
    active = getattr(request, "shop", None)
    if user.is_superuser:
        choices = list(Shop.objects.order_by("name")[:SUPERUSER_CHOICES])
    else:
        choices = list(getattr(request, "shops_available", []))
    membership = getattr(request, "membership", None)
    return {
        "show": True,
        "request": request,
        "active": active,
        "role": membership.get_role_display() if membership else None,
        "is_superuser": user.is_superuser,
        "others": [shop for shop in choices if active is None or shop.pk != active.pk],
        "next": request.get_full_path(),
        "csrf_token": context.get("csrf_token"),
    }
