from django.contrib import admin

from siyu.content.models import Material, Script, ScriptCategory

admin.site.register(ScriptCategory)
admin.site.register(Script)
admin.site.register(Material)
