"""Scope saved field mappings to their project.

Mappings saved before were shared by every project; there is no safe project to
give them, so they are removed (they were only ever conveniences, re-saved in a
click from any batch page).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("importers", "0001_initial"),
        ("registry", "0006_export_log"),
    ]

    operations = [
        migrations.RunSQL("DELETE FROM importers_savedmapping", migrations.RunSQL.noop),
        migrations.RemoveConstraint(model_name="savedmapping", name="savedmapping_name"),
        migrations.AddField(
            model_name="savedmapping",
            name="project",
            field=models.ForeignKey(
                default=0,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="registry.project",
                verbose_name="project",
            ),
            preserve_default=False,
        ),
        migrations.AddConstraint(
            model_name="savedmapping",
            constraint=models.UniqueConstraint(
                fields=("project", "name", "layer"), name="savedmapping_name"
            ),
        ),
    ]
