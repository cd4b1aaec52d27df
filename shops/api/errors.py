from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    return drf_exception_handler(exc, context)


def handler404(request, exception):
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    from django.views.defaults import server_error

    return server_error(request)
