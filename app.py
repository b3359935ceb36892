"""The lab's app: `streamlit run app.py`. Pages live in app_pages/, shared pieces in ui/.

Not `pages/`: Streamlit runs an app that has a `pages/` folder in its old multipage mode,
where a link to a page runs that file alone, past this script's navigation and sidebar."""
import streamlit as st

from ui import caches, experiments, join, status

st.set_page_config(page_title="Pet transfer-learning lab", page_icon=":material/pets:", layout="wide")
navigation = st.navigation([
    st.Page("app_pages/1_overview.py", title="Overview", icon=":material/table_chart:", default=True),
    st.Page("app_pages/2_histories.py", url_path="histories", title="Training histories", icon=":material/show_chart:"),
    st.Page("app_pages/3_compare.py", url_path="compare", title="Compare predictions", icon=":material/compare:"),
    st.Page("app_pages/4_live.py", url_path="live", title="Live inference", icon=":material/photo_camera:"),
    st.Page("app_pages/5_dataset.py", url_path="dataset", title="Dataset", icon=":material/photo_library:"),
    st.Page("app_pages/6_breeds.py", url_path="breeds", title="Per-breed results", icon=":material/pets:"),
    st.Page("app_pages/7_efficiency.py", url_path="efficiency", title="Data efficiency", icon=":material/trending_up:"),
    st.Page("app_pages/8_present.py", url_path="present", title="Present", icon=":material/slideshow:"),
])
join.join_sidebar(experiments.experiment_picker())
experiments.damage_note()
status.training_status()
navigation.run()
caches.warm_models()  # after the page: see its docstring
