from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_list_indexes')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Room',
            name='private',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Room',
            name='created_by',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.CreateModel(
            name='RoomMember',
            fields=[
                ('id', fields.BigIntField(primary_key=True, unique=True, db_index=True)),
                ('room', fields.ForeignKeyField('models.Room', source_field='room_id', db_constraint=True, to_field='id', related_name='members', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='memberships', on_delete=OnDelete.CASCADE)),
                ('added_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'room_members', 'app': 'models', 'unique_together': (('room', 'user'),), 'indexes': [Index(fields=['user_id', 'room_id'])], 'pk_attr': 'id', 'table_description': 'Members of private rooms'},
            bases=['Model'],
        ),
    ]
