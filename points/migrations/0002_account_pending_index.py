from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="pointsaccount",
            index=models.Index(
                condition=models.Q(("pending__gt", 0)),
                fields=["shop", "id"],
                name="points_account_pending_idx",
            ),
        ),
    ]
