from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Room',
            index=Index(fields=['created_at', 'id']),
        ),
        ops.AddIndex(
            model_name='User',
            index=Index(fields=['created_at', 'id']),
        ),
    ]
